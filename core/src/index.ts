import 'reflect-metadata';
export * from './kernel';
