import 'reflect-metadata';
export * from './kernel';
export * from './images';
